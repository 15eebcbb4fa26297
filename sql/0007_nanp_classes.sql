-- Issue 17: non-US NANP destinations are classes of their own, allowed per customer explicitly.
-- 'canada': Canadian area codes; 'caribbean': the other NANP countries (Caribbean and Bermuda,
-- e.g. +1 876 Jamaica, +1 809 Dominican Republic). US territories stay 'domestic'. The area
-- codes by country are the built-in table warpd_core::numbering::nanp_countries.
ALTER TYPE dest_class ADD VALUE IF NOT EXISTS 'canada';
ALTER TYPE dest_class ADD VALUE IF NOT EXISTS 'caribbean';
