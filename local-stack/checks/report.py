"""The closing report every check script prints: each failed check, then
'<name>: N passed, N failed' (the line test-all.sh adds to its total)."""


def report(name, checks):
    """`checks`: (what, passed, detail) triples. Returns the exit status."""
    failed = [(what, detail) for what, ok, detail in checks if not ok]
    for what, detail in failed:
        print(f"FAILED: {what}: {detail}")
    print(f"{name}: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0
