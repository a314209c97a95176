package persistence

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ClusterCA returns the cluster's certificate authority (PEM certificate and
// key), made by create the first time a node asks. Nodes racing on a new
// database all end with the one that was stored first.
func (s *Store) ClusterCA(ctx context.Context, create func() (certPEM, keyPEM []byte, err error)) (certPEM, keyPEM []byte, err error) {
	read := func() error {
		return s.pool.QueryRow(ctx, `SELECT cert_pem, key_pem FROM cluster_ca`).Scan(&certPEM, &keyPEM)
	}
	if err = read(); !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return nil, nil, fmt.Errorf("persistence: read the cluster CA: %w", err)
		}
		return certPEM, keyPEM, nil
	}
	c, k, err := create()
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO cluster_ca (cert_pem, key_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c, k); err != nil {
		return nil, nil, fmt.Errorf("persistence: store the cluster CA: %w", err)
	}
	if err := read(); err != nil {
		return nil, nil, fmt.Errorf("persistence: read the cluster CA: %w", err)
	}
	return certPEM, keyPEM, nil
}
