// The host-loop decode step's KV-cache writes stay in tile layout: each layer writes its new
// key and value row with tt-metal's in-place cache update (a one-slot scatter along the
// cache's time axis lowers to it), never through a row-major rows_scatter of the cache, and
// nothing permutes or re-lays out a cache. $CACHE_WRITES = 2 * layers.
// Checked by test_tt_compile.py::test_ttnn_decode_step_cache_update (filecheck.py).
//
// IMPLICIT-CHECK-NOT: "ttnn.rows_scatter"
// IMPLICIT-CHECK-NOT: "ttnn.permute"
// IMPLICIT-CHECK-NOT: "ttnn.fill_cache"
// CHECK-LABEL: func.func public @main(
// CHECK-COUNT-$CACHE_WRITES: "ttnn.paged_update_cache"
// CHECK-NOT: "ttnn.paged_update_cache"
