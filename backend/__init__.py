"""MDM backend: skeleton, features and BVH (numpy-only, bundled into the add-on) plus the torch model and samplers."""
