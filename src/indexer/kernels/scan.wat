;; Exact-scan kernels (WebAssembly SIMD): distances of one query to rows of a row-major matrix held in this
;; module's memory. Each kernel writes one distance per scanned row to `out`. `rows` = 0 scans rows 0..n-1;
;; otherwise it points to n i32 row numbers (a filter's) and those rows are scanned, in that order.
;; Compiled to scan.wasm by scripts/build-wasm.mjs (wabt); src/indexer/flat-scan.ts loads it.
(module
  (import "env" "memory" (memory 1 65536))

  ;; Squared L2 distance of byte rows to a byte query, exact in i32 (rows of up to 33,000 bytes).
  (func (export "l2_u8") (param $x i32) (param $rows i32) (param $n i32) (param $d i32) (param $q i32) (param $out i32)
    (local $t i32) (local $p i32) (local $j i32) (local $end16 i32) (local $acc v128) (local $a v128) (local $b v128)
    (local $diff v128) (local $s i32) (local $e i32)
    (local.set $end16 (i32.and (local.get $d) (i32.const -16)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $p (i32.add (local.get $x) (i32.mul (if (result i32) (local.get $rows)
          (then (i32.load (i32.add (local.get $rows) (i32.shl (local.get $t) (i32.const 2)))))
          (else (local.get $t))) (local.get $d))))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $vdone
          (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $j) (local.get $end16)))
            (local.set $a (v128.load align=1 (i32.add (local.get $p) (local.get $j))))
            (local.set $b (v128.load align=1 (i32.add (local.get $q) (local.get $j))))
            ;; |a - b| per byte: one of the two saturating differences is zero
            (local.set $diff (v128.or (i8x16.sub_sat_u (local.get $a) (local.get $b)) (i8x16.sub_sat_u (local.get $b) (local.get $a))))
            (local.set $a (i16x8.extend_low_i8x16_u (local.get $diff)))
            (local.set $b (i16x8.extend_high_i8x16_u (local.get $diff)))
            (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (local.get $a) (local.get $a))))
            (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s (local.get $b) (local.get $b))))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $vloop)))
        (local.set $s (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
          (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
        (block $tdone
          (loop $tloop
            (br_if $tdone (i32.ge_u (local.get $j) (local.get $d)))
            (local.set $e (i32.sub
              (i32.load8_u (i32.add (local.get $p) (local.get $j)))
              (i32.load8_u (i32.add (local.get $q) (local.get $j)))))
            (local.set $s (i32.add (local.get $s) (i32.mul (local.get $e) (local.get $e))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tloop)))
        (i32.store (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 2))) (local.get $s))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $rowloop))))

  ;; Squared L2 distance (f32) of float rows to a float query.
  (func (export "l2_f32") (param $x i32) (param $rows i32) (param $n i32) (param $d i32) (param $q i32) (param $out i32)
    (local $t i32) (local $p i32) (local $j i32) (local $end8 i32) (local $acc0 v128) (local $acc1 v128)
    (local $a v128) (local $b v128) (local $s f32) (local $e f32)
    (local.set $end8 (i32.and (local.get $d) (i32.const -8)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $p (i32.add (local.get $x) (i32.shl (i32.mul (if (result i32) (local.get $rows)
          (then (i32.load (i32.add (local.get $rows) (i32.shl (local.get $t) (i32.const 2)))))
          (else (local.get $t))) (local.get $d)) (i32.const 2))))
        (local.set $acc0 (v128.const f32x4 0 0 0 0))
        (local.set $acc1 (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        ;; two independent accumulators of 4 lanes: 8 values a step
        (block $vdone
          (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $j) (local.get $end8)))
            (local.set $a (v128.load align=4 (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $b (v128.load align=4 (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $a (f32x4.sub (local.get $a) (local.get $b)))
            (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $a) (local.get $a))))
            (local.set $a (v128.load offset=16 align=4 (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $b (v128.load offset=16 align=4 (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $a (f32x4.sub (local.get $a) (local.get $b)))
            (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $a) (local.get $a))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $vloop)))
        (local.set $acc0 (f32x4.add (local.get $acc0) (local.get $acc1)))
        (local.set $s (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0)))))
        (block $tdone
          (loop $tloop
            (br_if $tdone (i32.ge_u (local.get $j) (local.get $d)))
            (local.set $e (f32.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $e (f32.sub (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))) (local.get $e)))
            (local.set $s (f32.add (local.get $s) (f32.mul (local.get $e) (local.get $e))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tloop)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 2))) (local.get $s))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $rowloop))))

  ;; Inner product (f32) of float rows with a float query (cosine of unit rows).
  (func (export "dot_f32") (param $x i32) (param $rows i32) (param $n i32) (param $d i32) (param $q i32) (param $out i32)
    (local $t i32) (local $p i32) (local $j i32) (local $end8 i32) (local $acc0 v128) (local $acc1 v128)
    (local $a v128) (local $b v128) (local $s f32) (local $e f32)
    (local.set $end8 (i32.and (local.get $d) (i32.const -8)))
    (block $done
      (loop $rowloop
        (br_if $done (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $p (i32.add (local.get $x) (i32.shl (i32.mul (if (result i32) (local.get $rows)
          (then (i32.load (i32.add (local.get $rows) (i32.shl (local.get $t) (i32.const 2)))))
          (else (local.get $t))) (local.get $d)) (i32.const 2))))
        (local.set $acc0 (v128.const f32x4 0 0 0 0))
        (local.set $acc1 (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        ;; two independent accumulators of 4 lanes: 8 values a step
        (block $vdone
          (loop $vloop
            (br_if $vdone (i32.ge_u (local.get $j) (local.get $end8)))
            (local.set $a (v128.load align=4 (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $b (v128.load align=4 (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $a) (local.get $b))))
            (local.set $a (v128.load offset=16 align=4 (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $b (v128.load offset=16 align=4 (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $a) (local.get $b))))
            (local.set $j (i32.add (local.get $j) (i32.const 8)))
            (br $vloop)))
        (local.set $acc0 (f32x4.add (local.get $acc0) (local.get $acc1)))
        (local.set $s (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc0)) (f32x4.extract_lane 1 (local.get $acc0)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc0)) (f32x4.extract_lane 3 (local.get $acc0)))))
        (block $tdone
          (loop $tloop
            (br_if $tdone (i32.ge_u (local.get $j) (local.get $d)))
            (local.set $e (f32.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))) (local.get $e))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tloop)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 2))) (local.get $s))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $rowloop))))

  ;; The indices t in [from, n) whose out[t] is below $bound (above it when $above is set), in order, written to $idx;
  ;; returns how many. The top-k selection after a scan looks only at these instead of at every distance.
  (func (export "select_f32") (param $out i32) (param $from i32) (param $n i32) (param $bound f32) (param $above i32) (param $idx i32) (result i32)
    (local $t i32) (local $c i32) (local $m i32) (local $bv v128) (local $v v128) (local $e f32)
    (local.set $bv (f32x4.splat (local.get $bound)))
    (local.set $t (local.get $from))
    (block $vdone
      (loop $vloop
        (br_if $vdone (i32.gt_u (i32.add (local.get $t) (i32.const 4)) (local.get $n)))
        (local.set $v (v128.load align=4 (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 2)))))
        (local.set $m (i32x4.bitmask (if (result v128) (local.get $above)
          (then (f32x4.gt (local.get $v) (local.get $bv)))
          (else (f32x4.lt (local.get $v) (local.get $bv))))))
        ;; each set lane, lowest first
        (block $mdone
          (loop $mloop
            (br_if $mdone (i32.eqz (local.get $m)))
            (i32.store (i32.add (local.get $idx) (i32.shl (local.get $c) (i32.const 2))) (i32.add (local.get $t) (i32.ctz (local.get $m))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (local.set $m (i32.and (local.get $m) (i32.sub (local.get $m) (i32.const 1))))
            (br $mloop)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $vloop)))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $t) (local.get $n)))
        (local.set $e (f32.load (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 2)))))
        (if (if (result i32) (local.get $above) (then (f32.gt (local.get $e) (local.get $bound))) (else (f32.lt (local.get $e) (local.get $bound))))
          (then
            (i32.store (i32.add (local.get $idx) (i32.shl (local.get $c) (i32.const 2))) (local.get $t))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $sloop)))
    (local.get $c))
)
