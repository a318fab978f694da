-- When, and from which address, a token family last refreshed: the "last seen" of a device
-- (admin devices list, `device list`). Written by the refresh that rotates, in its
-- transaction, on the family row that the rotation reads anyway.
ALTER TABLE token_families
    ADD COLUMN last_refresh_at timestamptz,
    ADD COLUMN last_refresh_ip inet;
