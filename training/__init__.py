"""Training code ([train] extra): teachers, datasets, torch models, training scripts.

Nothing here is imported by the runtime package. Run scripts as `python -m training.<name>`
from the repository root.
"""
