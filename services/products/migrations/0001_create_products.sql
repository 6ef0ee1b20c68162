-- Products: the only table of the sample service.
-- id and created_at are set by the server; price is exact (NUMERIC, never float).
CREATE TABLE products (
    id         uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text          NOT NULL,
    price      numeric(12,2) NOT NULL,
    created_at timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT products_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT products_price_non_negative CHECK (price >= 0)
);
