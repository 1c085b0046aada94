// The host-loop decode step (generate(loop="host")) as tt-mlir compiles it: Megatron's
// collectives and nothing else. Per call, in @main: one all-reduce for the
// vocabulary-sharded embedding lookup, two per decoder layer (after o_proj and after
// down_proj), two for the greedy choice (pmax of the shard maxima, pmin of the winning
// ids). Nothing is gathered, scattered or permuted. $ALL_REDUCES = 2 * layers + 3.
// Checked by test_tt_compile.py::test_ttnn_decode_step_collectives (filecheck.py).
//
// IMPLICIT-CHECK-NOT: "ttnn.all_gather"
// IMPLICIT-CHECK-NOT: "ttnn.reduce_scatter"
// IMPLICIT-CHECK-NOT: "ttnn.all_to_all"
// IMPLICIT-CHECK-NOT: "ttnn.collective_permute"
// IMPLICIT-CHECK-NOT: "ttnn.point_to_point"
// CHECK-LABEL: func.func public @main(
// CHECK-COUNT-$ALL_REDUCES: "ttnn.all_reduce"
// CHECK-NOT: "ttnn.all_reduce"
