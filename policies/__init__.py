"""rag-infra's policy pack: HA and security rules, runnable by the Pulumi CLI
(`pulumi preview --policy-pack policies`) or offline (`python -m policies.check --stack NAME`)."""
