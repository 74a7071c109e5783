"""transformers_rdmf: RDMF (Reaction-Diffusion Multimodal Fusion) on Hugging Face transformers."""

__version__ = "0.1.0"
