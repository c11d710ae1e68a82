"""GraphQL for signal corridors: status, plan history and exports, and the engineers' pins and overrides."""
