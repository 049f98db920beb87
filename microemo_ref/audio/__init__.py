"""Audio perception: voice activity and prosody."""
