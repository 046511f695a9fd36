DROP TABLE IF EXISTS books;
CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, author TEXT, year INTEGER, copies INTEGER);
INSERT INTO books (title, author, year, copies) VALUES
  ('Dune', 'Herbert', 1965, 3),
  ('Emma', 'Austen', 1815, 2),
  ('Persuasion', 'Austen', 1817, 1),
  ('Solaris', 'Lem', 1961, 4),
  ('Beloved', 'Morrison', 1987, 2);
