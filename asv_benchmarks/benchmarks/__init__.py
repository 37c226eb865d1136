"""asv benchmarks of fastrnn (see ../asv.conf.json). Every ``setup`` warms the JIT, so no
timing includes compilation; ``bench_jit`` measures compilation on its own."""
