"""Data: reading photos and masks (CCP, image folders, COCO), checking them, transforms, the LightningDataModule."""
