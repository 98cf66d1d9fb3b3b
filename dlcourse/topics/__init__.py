"""Teaching code, one idea per module with its plots and widget: gradient flow, attention maps,
the training recipe, hyperparameter search."""
