# Whisper base on COPA as the authors build it (issue 24's replication regime, the one task that fitted), run on
# 2026-12-07 from /work/main on the project's 2-core machine (AMD EPYC, AVX-512) at the lowest priority, nothing else
# running for most of it. pipeline-source.toml is ../../replication/copa-authors' pipeline with piper-whisper-base as
# the teacher, its own folders, and the undistilled and authors-euclid variants. One command: the base cache (500 rows,
# 143 s), its probe, 10 runs, the report copied here.
cd /work/main
.venv/bin/armada run results/teachers/copa-authors/pipeline-source.toml
