"""Face perception: MediaPipe FaceMesh landmarks and the regions placed on them."""
