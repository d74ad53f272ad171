"""The Qdrant tier: a Raft cluster of nodes behind an NGINX load balancer, and its collections."""
