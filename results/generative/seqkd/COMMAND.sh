# SeqKD for the generative student (issue 15): configs/generative-dolly-seqkd.toml with its folders moved.
# One thread a process on the 2-core machine, beside the replication's processes.
cd /work/main
export OMP_NUM_THREADS=1 TQDM_MININTERVAL=30
# 1. The teacher: SmolLM2-135M fine-tuned as configs/generative-dolly.toml fine-tunes its undistilled student
#    (the same 160 Dolly rows, seed 0: self-distillation; 531 s, dev LM loss 2.7472).
.venv/bin/armada distill --config configs/generative-dolly.toml --dataset instruct/dolly --undistilled --seed 0 \
    --out /work/gen/runs/seqkd-teacher
# 2. Its greedy answers (at most 256 new tokens) to the 160 training prompts: 4,650 s on one core.
.venv/bin/armada extract --teacher run:/work/gen/runs/seqkd-teacher --dataset instruct/dolly --config configs/generative-dolly.toml \
    --split train --limit 160 --out /work/gen/cache/instruct_dolly--seqkd-teacher.seqkd
# 3. The students, three processes sharing the three seeds (seqkd.toml = configs/generative-dolly-seqkd.toml with
#    run.runs_dir/report_dir under /work/gen and seqkd_cache = the cache above):
.venv/bin/armada run /work/gen/seqkd.toml      # three times, at once
