"""Check every record's [[code]] strings against each release tag of the package it reads.

For each tag, the code checks (read from the tag's files with git show) must say the same as
the record's version range: a disagreement means a grep string that does not mark the change
it claims to. Needs local clones (bare is fine) of the upstream repositories:

    python scripts/verify_code_checks.py xtuner=/path/to/xtuner.git peft=/path/to/peft.git mmengine=...

Prints one line per record and package: OK, or the tags that disagree ("unreadable" where the
file is missing in an affected release and the check defers to the version).
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from envdoctor.kb.load import load
from envdoctor.kb.evaluate import in_specifier
from packaging.version import Version
kb=load(['knowledge'])
PREFIX={'peft':'src/'}  # where a package's files sit in its repository
REPOS={name: (path, PREFIX.get(name, '')) for name, path in (a.split('=', 1) for a in sys.argv[1:])}
def tags(G):
    out=[]
    for t in subprocess.run(['git','--git-dir',G,'tag'],capture_output=True,text=True).stdout.split():
        try: out.append((Version(t.lstrip('v')),t))
        except Exception: pass
    return sorted(out)
cache={}
def show(G,t,p):
    k=(G,t,p)
    if k not in cache:
        r=subprocess.run(['git','--git-dir',G,'show','%s:%s'%(t,p)],capture_output=True,text=True)
        cache[k]=r.stdout if r.returncode==0 else None
    return cache[k]
for r in kb.records:
    pk={c.package for c in r.code} & set(REPOS)
    for p in pk:
        G,prefix=REPOS[p]
        rng=[a for a in r.affected if a.package==p]
        bad=[]; n=0
        for v,t in tags(G):
            if p=='xtuner' and v>=Version('1.0.0rc0'): continue
            v_in=any(in_specifier(v, a.specifier() or '>=0') for a in rng)
            says=True
            for c in r.code:
                if c.package!=p: continue
                txt=show(G,t,prefix+c.file)
                if txt is None: says=(False if c.if_missing=="no" else None); break
                if (c.contains in txt)!=c.present: says=False; break
            n+=1
            if says is not None and says!=v_in: bad.append((t,v_in,says))
            if says is None and v_in: bad.append((t,'unreadable'))
        print(r.id, p, n, 'tags', 'OK' if not bad else bad)
