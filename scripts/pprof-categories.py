#!/usr/bin/env python3
# The CPU profile of a node by category (docs/BENCHMARKS.md, "Hot path"):
#   scripts/pprof-categories.py BINARY PROFILE
# Each sample counts once, in the first category its stack matches (in the
# order listed); "inclusive" counts every sample whose stack contains it.
import subprocess, sys, re
bin, prof = sys.argv[1], sys.argv[2]
out = subprocess.run(["go","tool","pprof","-traces",bin,prof],capture_output=True,text=True).stdout
blocks = out.split("-----------+-------------------------------------------------------")
samples=[]
for b in blocks[1:]:
    lines=[l for l in b.strip("\n").split("\n") if l.strip()]
    if not lines: continue
    m=re.match(r"\s*([\d.]+)(ms|s)\s+(.*)",lines[0])
    if not m: continue
    v=float(m.group(1))*(1 if m.group(2)=="ms" else 1000)
    stack=[m.group(3).strip()]+[l.strip() for l in lines[1:]]
    samples.append((v,stack))
total=sum(v for v,_ in samples)
# first matching category wins, checked leaf→root with ordered rules
cats=[
 ("GC (background mark/sweep)", lambda s: any(f.startswith("runtime.gcBgMarkWorker") or f.startswith("runtime.bgsweep") or f.startswith("runtime.bgscavenge") for f in s)),
 ("encoding/json", lambda s: any(f.startswith("encoding/json") for f in s)),
 ("allocation (mallocgc, incl. assist)", lambda s: any(f.startswith("runtime.mallocgc") or f.startswith("runtime.newobject") or f.startswith("runtime.growslice") or f.startswith("runtime.makeslice") for f in s)),
 ("pgx (persistence, indexer, other SQL)", lambda s: any("jackc/pgx" in f for f in s)),
 ("websocket writes/reads (gateway ws)", lambda s: any("coder/websocket" in f or "gateway.(*wsConn)" in f or "gateway/wsconn" in f for f in s)),
 ("net/http (REST server + loopback conns)", lambda s: any(f.startswith("net/http") for f in s)),
 ("protoactor (mailboxes, cluster, remote)", lambda s: any("protoactor-go" in f for f in s)),
 ("protobuf", lambda s: any("google.golang.org/protobuf" in f for f in s)),
 ("scheduler / netpoll / syscalls other", lambda s: True),
]
agg={c:0.0 for c,_ in cats}
for v,s in samples:
    for c,f in cats:
        if f(s): agg[c]+=v; break
print(f"total {total:.0f} ms of samples")
for c,_ in cats: print(f"{c:45s} {agg[c]:7.0f} ms {100*agg[c]/total:5.1f}%")
# inclusive
print("inclusive (stack contains):")
for name,pat in [("encoding/json","encoding/json"),("mallocgc","runtime.mallocgc"),("gcBgMarkWorker","runtime.gcBgMarkWorker"),("pgx","jackc/pgx"),("protoactor","protoactor-go"),("net/http","net/http"),("websocket","coder/websocket"),("syscall","Syscall6"),("json in persistence","persistence."),("conversationGrain","actors.(*conversationGrain)"),("inboxGrain","actors.(*inbox"),("gateway.(*Server)","gateway.(*Server)"),("indexer","consumers/indexer"),("webhooks","consumers/webhooks")]:
    t=sum(v for v,s in samples if any(pat in f for f in s))
    print(f"  {name:28s} {t:7.0f} ms {100*t/total:5.1f}%")
