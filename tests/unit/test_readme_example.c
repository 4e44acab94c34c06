/*
 * test_readme_example.c: the C example in README.md is, verbatim, the
 * program tests/example/basic_operation.c that the suite compiles and runs,
 * so the README's example cannot rot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shl_test.h"

#include "shl_text.h"

static void
test_readme_example_is_the_compiled_one(void **state)
{
    (void)state;
    /* __FILE__ is .../tests/unit/test_readme_example.c */
    char root[4096];
    snprintf(root, sizeof(root), "%s", __FILE__);
    char *cut = strstr(root, "/tests/unit/");
    assert_non_null(cut);
    *cut = 0;
    char readme_path[4200], example_path[4200];
    snprintf(readme_path, sizeof(readme_path), "%s/README.md", root);
    snprintf(example_path, sizeof(example_path),
             "%s/tests/example/basic_operation.c", root);
    char *readme = shl_test_slurp(readme_path, NULL);
    char *example = shl_test_slurp(example_path, NULL);
    assert_non_null(readme);
    assert_non_null(example);
    if (!strstr(readme, example))
        fail_msg("README.md does not contain %s verbatim", example_path);
    free(readme);
    free(example);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_example_is_the_compiled_one),
    };
    return cmocka_run_group_tests_name("readme_example", tests, NULL, NULL);
}
