"""Image-space geometry: frame normalisation, crops, alignment, head pose, eye state."""
