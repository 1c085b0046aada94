// The host-loop decode step (generate(loop="host")) as tt-mlir compiles it: Megatron's
// collectives and the greedy choice's gathers, nothing else. Per call, in @main: one all-reduce
// (a sum) for the vocabulary-sharded embedding lookup, two per decoder layer (after o_proj and
// after down_proj), and two all-gathers for the greedy choice (each device's best value and id,
// [batch, tp]); no all-reduce with another reduce type (tt-mlir's runtime sums whatever the type
// says). Nothing is scattered or permuted. $ALL_REDUCES = 2 * layers + 1.
// Checked by test_tt_compile.py::test_ttnn_decode_step_collectives (filecheck.py).
//
// IMPLICIT-CHECK-NOT: "ttnn.reduce_scatter"
// IMPLICIT-CHECK-NOT: "ttnn.all_to_all"
// IMPLICIT-CHECK-NOT: "ttnn.collective_permute"
// IMPLICIT-CHECK-NOT: "ttnn.point_to_point"
// IMPLICIT-CHECK-NOT: reduce_type<max>
// IMPLICIT-CHECK-NOT: reduce_type<min>
// CHECK-LABEL: func.func public @main(
// CHECK-COUNT-$ALL_REDUCES: "ttnn.all_reduce"{{.*}}reduce_type<sum>
// CHECK-NOT: "ttnn.all_reduce"
// CHECK-COUNT-2: "ttnn.all_gather"
// CHECK-NOT: "ttnn.all_gather"
