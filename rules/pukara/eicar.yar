/*
    Pukara's own rules (written for Pukara, not taken from a public rule set).
    SPDX-License-Identifier: MIT
    Copyright (c) 2026 the Pukara authors. The licence text is in rules/README.md.
*/

rule PUKARA_EICAR_Test_File {
    meta:
        description = "EICAR anti-malware test string (harmless; used by exercises and self-tests)"
        author = "Pukara"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
        license = "MIT"
        date = "2026-11-23"
        severity = "info"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar
}
