"""Search a catalogue of parsed photos by outfit, garment and colour."""

from parsing.search.catalogue import Catalogue, Hit

__all__ = ["Catalogue", "Hit"]
