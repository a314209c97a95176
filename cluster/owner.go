package cluster

import "hash/fnv"

// Owner is the address, of those given, that protoactor's disthash places
// an identity on: rendezvous hashing, the highest fnv-32a of identity then
// address. Leaving an address out gives the owner the cluster moves the
// identity to once that member is gone.
func Owner(identity string, addresses []string) string {
	best, bestScore := "", uint32(0)
	for _, a := range addresses {
		if s := score(identity, a); best == "" || s > bestScore {
			best, bestScore = a, s
		}
	}
	return best
}

func score(identity, address string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(identity))
	h.Write([]byte(address))
	return h.Sum32()
}
