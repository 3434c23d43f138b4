from cmms.testing.pki import dev_pki, untrusted_pki

__all__ = ["dev_pki", "untrusted_pki"]
