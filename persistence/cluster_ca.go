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
	err = s.oneRow("the cluster CA",
		func() error {
			return s.pool.QueryRow(ctx, `SELECT cert_pem, key_pem FROM cluster_ca`).Scan(&certPEM, &keyPEM)
		},
		func() error {
			c, k, err := create()
			if err != nil {
				return err
			}
			_, err = s.pool.Exec(ctx, `INSERT INTO cluster_ca (cert_pem, key_pem) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c, k)
			return err
		})
	return certPEM, keyPEM, err
}

// SealingKey returns the key that seals webhook secrets when no
// SWITCHBOARD_SECRET_KEY is set (base64 of 32 bytes), made by create the
// first time a node asks; with create nil, "" when none was ever made.
func (s *Store) SealingKey(ctx context.Context, create func() string) (string, error) {
	var key string
	read := func() error { return s.pool.QueryRow(ctx, `SELECT key_b64 FROM sealing_key`).Scan(&key) }
	if create == nil {
		if err := read(); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("persistence: read the sealing key: %w", err)
		}
		return key, nil
	}
	err := s.oneRow("the sealing key", read, func() error {
		_, err := s.pool.Exec(ctx, `INSERT INTO sealing_key (key_b64) VALUES ($1) ON CONFLICT DO NOTHING`, create())
		return err
	})
	return key, err
}

// oneRow reads a table's only row, inserting it first when there is none;
// of nodes racing on a new database, every one reads the row stored first.
func (s *Store) oneRow(what string, read, insert func() error) error {
	if err := read(); !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return fmt.Errorf("persistence: read %s: %w", what, err)
		}
		return nil
	}
	if err := insert(); err != nil {
		return fmt.Errorf("persistence: store %s: %w", what, err)
	}
	if err := read(); err != nil {
		return fmt.Errorf("persistence: read %s: %w", what, err)
	}
	return nil
}
