"""Small shared helpers with no home of their own (``math``: grids, rays and planes)."""
