"""The publish stage: the PR comment, check run, job summary and files; a downloaded artifact checked first."""
