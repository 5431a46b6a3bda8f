"""Spectral contrastive learning explorer."""
