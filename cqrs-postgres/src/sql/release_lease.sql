DELETE FROM {schema}.leases WHERE name = $1 AND owner = $2
