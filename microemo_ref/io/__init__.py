"""Clip and dataset I/O: video + audio + subtitles in, a `Clip` out."""
