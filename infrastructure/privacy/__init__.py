"""Personal data under the PDPA: per-person encryption of event fields (crypto-shredding), the
keyed blind index of national IDs (also the subject reference of the access log), erasure and
retention; the access log, and what is held about a person."""
