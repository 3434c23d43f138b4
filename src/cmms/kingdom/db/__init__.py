"""The Kingdom's database: schema, migrations, single-writer store and repositories."""
