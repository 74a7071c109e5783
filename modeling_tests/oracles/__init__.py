"""Second, independently written code paths the tests compare the library against (not shipped)."""
