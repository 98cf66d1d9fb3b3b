"""Course tooling that chapters never import: notebook execution, the lab generator, checks and grading."""
