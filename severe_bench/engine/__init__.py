"""Protocol runners: fine-tune (single- and multi-label, CNN and ViT tracks) and repetition counting."""
