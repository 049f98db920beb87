"""Words and utterances: segmentation from subtitles or voice activity, prompt text."""
