-- Prune: offers of workers that died while waiting (a live worker renews or withdraws its own).
DELETE FROM conveyor_offers
WHERE expires_at < coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8)
                   - 60
