"""AgentDB stage: the RL policies, user vectors and recent steps in an AgentDB database file."""
