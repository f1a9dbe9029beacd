"""The network: smp segmentation model + outfit encoder + context block, its losses and offline encoder weights."""
