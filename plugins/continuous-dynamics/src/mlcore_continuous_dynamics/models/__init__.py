"""The five dynamics models; each predicts the next state and rolls out autoregressively."""
