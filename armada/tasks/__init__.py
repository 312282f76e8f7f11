"""Tasks: datasets, how to read them, and what the student and the teacher see of each row; the task
kinds, their metrics (metrics.py) and the prompts of generative ones (generative.py). Every stage
names tasks through this registry."""

from armada.tasks.model import OUTPUT_KINDS, STUDENT_INPUT, Example, Split, Task, sha256_text
from armada.tasks.registry import TASKS, get_task, task_names

__all__ = ["OUTPUT_KINDS", "STUDENT_INPUT", "Example", "Split", "Task", "TASKS", "get_task", "task_names", "sha256_text"]
