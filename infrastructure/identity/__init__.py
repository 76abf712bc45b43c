"""Identity: trusted OIDC issuers (keys, token verification), browser sign-in and its sessions."""
