"""ARMADA: cross-modal knowledge distillation from frozen multimodal teachers into language models.

The package face and what every stage shares: the command line (commands/), the pipeline file
(config.py), the task registry with its kinds, metrics and prompts (tasks/), files replaced whole and
names made safe (files.py), and `armada run` (pipeline.py). The stages are armada.extract,
armada.distill, armada.eval and armada.reporting; they hand over through armada.cache_schema (the
cache) and armada.run_schema (the run folder).
"""
