"""Local replay of CloudTrail files through the same pipeline as the Lambda."""
