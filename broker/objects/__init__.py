"""Objects: candidates, sources, photometry and classifications as REST users see them."""
