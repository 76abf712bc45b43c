"""Personal data under the PDPA: per-person encryption of event fields (crypto-shredding), the
keyed blind index of national IDs, erasure and retention."""
