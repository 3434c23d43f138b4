"""Code shared by the LLv2 and reach-only LLv2 protocols: named points, keys, noise, records, chunks."""
