"""Regenerates the PBES2 JWE fixtures with jwcrypto, an implementation independent of Mayfly.

    python3 -m venv /tmp/jwvenv && /tmp/jwvenv/bin/pip install jwcrypto
    /tmp/jwvenv/bin/python make_fixtures.py

Each case writes <name>.jwk.json (the private JWK) and <name>.jwe (it, encrypted with
PASSWORD). The keys are test keys: they sign nothing outside the tests.
"""

import json

from jwcrypto import jwe, jwk

# The password of RFC 7517 Appendix C.
PASSWORD = "Thus from my lips, by yours, my sin is purged."

CASES = [
    # step-ca's choice: PBES2-HS256+A128KW, A256GCM.
    ("p256-hs256-a256gcm", dict(kty="EC", crv="P-256"), "PBES2-HS256+A128KW", "A256GCM"),
    ("ed25519-hs384-a192gcm", dict(kty="OKP", crv="Ed25519"), "PBES2-HS384+A192KW", "A192GCM"),
    ("rsa2048-hs512-a128gcm", dict(kty="RSA", size=2048), "PBES2-HS512+A256KW", "A128GCM"),
]

password = jwk.JWK.from_password(PASSWORD)
for name, params, alg, enc in CASES:
    key = jwk.JWK.generate(**params)
    private = json.loads(key.export_private())
    private["kid"] = key.thumbprint()
    plaintext = json.dumps(private, sort_keys=True)
    header = {"alg": alg, "enc": enc, "cty": "jwk+json", "p2c": 8192}
    token = jwe.JWE(plaintext.encode(), protected=json.dumps(header))
    token.add_recipient(password)
    with open(f"{name}.jwk.json", "w") as f:
        f.write(plaintext + "\n")
    with open(f"{name}.jwe", "w") as f:
        f.write(token.serialize(compact=True) + "\n")
