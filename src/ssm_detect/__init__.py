"""ssm-detect: detects AWS Systems Manager abuse in CloudTrail, in Lambda and in local replay."""
